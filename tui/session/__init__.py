"""Running a rollout: assembling an engine with its adapters, journal, clock and lease; following a journal. Used by the command line and the console alike."""
