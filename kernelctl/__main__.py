from kernelctl.cli import main

main()
