from bireal_fpga.cli.main import main

main()
