"""TensorFlow backend (extra ``[tf]``): HugeCTR models as trainable Keras models and
SavedModels serving raw keys (docs/tensorflow.md)."""
