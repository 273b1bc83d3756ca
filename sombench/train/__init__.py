"""Training: the trainer of one seed, a trained bandit policy, and the executors (a local pool, Ray, Slurm)."""
