"""Rule modules, one per area. Importing this package registers every rule."""
