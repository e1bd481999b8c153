from megamind.cli.main import main

main()
