"""The entry point: as small as possible, so that a Ctrl-C while kernelctl is still
loading its modules is a one-line message, not a traceback."""

import sys


def main() -> None:
    try:
        from kernelctl.quick import answer

        code = answer(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from kernelctl.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("kernelctl: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
