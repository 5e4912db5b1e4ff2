"""The command line: argument parsing, subcommands and what they print. No Textual here."""
