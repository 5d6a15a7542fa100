"""Training: the setup seam (`build`), the pure steps, the orbax/grain loop (`trainer`), the
time-budget trainer (`budget`) with its pool and device ring, and every checkpoint format
(`checkpoints`)."""
