"""`python -m devicetrust`: the same as the `devicetrust` command."""

from devicetrust.cli.main import main

if __name__ == "__main__":
    main()
