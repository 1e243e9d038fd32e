"""The demo data generator: departmental sources of simulated customers, with ground truth."""
