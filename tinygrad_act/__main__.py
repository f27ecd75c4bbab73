"""``python -m tinygrad_act``: see `tinygrad_act.cli`."""

from tinygrad_act.cli import main_exit

if __name__ == "__main__":
    main_exit()
