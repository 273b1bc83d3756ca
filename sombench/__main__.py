from sombench.cli import main

main()
