from visionstudy.cli import main

if __name__ == "__main__":  # not again in a spawned or forkserver child, which imports this module
    main()
