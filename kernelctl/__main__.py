"""The entry point: as small as possible, so that a Ctrl-C while kernelctl is still
loading its modules is a one-line message, not a traceback."""

import sys


def main() -> None:
    try:
        from kernelctl.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("kernelctl: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
