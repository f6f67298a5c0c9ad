"""Things to try the daemon with (vendor simulator, verifying receiver, demo); never
imported by the daemon."""
