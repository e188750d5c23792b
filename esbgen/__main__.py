from esbgen.cli import main

main()
