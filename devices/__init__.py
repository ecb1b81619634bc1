"""Built-in device profiles (one TOML file per target; the id is the file stem)."""
