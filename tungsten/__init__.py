"""TUNGSTEN: entity state in named sections, on LMDB or in memory behind one interface."""
