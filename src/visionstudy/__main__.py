from visionstudy.cli import main

main()
