"""Building blocks shared by the algorithms: replay buffer, networks, critics, targets, temperature."""
