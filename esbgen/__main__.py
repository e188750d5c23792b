from esbgen.console import main

main()
