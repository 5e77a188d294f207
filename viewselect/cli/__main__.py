from viewselect.cli import main

main()
