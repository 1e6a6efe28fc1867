"""PyTorch backend (extra ``[torch]``): HugeCTR models as trainable ``nn.Module``s."""
