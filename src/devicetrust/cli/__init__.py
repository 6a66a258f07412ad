"""The `devicetrust` command (entry point `devicetrust.cli.main:main`): an interface layer that
only calls services through `runtime.Platform`, never the store."""
