"""Pipeline steps as `stargan` sub-commands: thin CLIs that parse arguments, call the library and write a summary."""
