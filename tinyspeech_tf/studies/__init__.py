"""Studies that train many runs and compare them in a generated report: the F-mode ablation,
architectures over seeds, and recipe changes one at a time."""
