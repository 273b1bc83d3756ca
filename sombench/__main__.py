from sombench.cli.main import main

main()
