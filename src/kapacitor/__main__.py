from kapacitor.cli import main

main()
