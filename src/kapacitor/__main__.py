from kapacitor.entry import main

main()
