"""Keras 3 models written against the keras package (functional, subclassed, tokens)."""

import keras
from keras import layers


def build_model():
    inputs = keras.Input(shape=(12,))
    x = layers.Dense(32, activation="relu", kernel_initializer="he_normal")(inputs)
    x = layers.Dense(32, activation="relu", kernel_initializer="he_normal")(x)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs)


class DeepTanhKeras(keras.Model):
    """Subclassed, unbuilt: the input shape must come from the hint."""

    def __init__(self, depth: int = 16, width: int = 64):
        super().__init__()
        init = keras.initializers.RandomNormal(stddev=1.0)
        self.hidden = [layers.Dense(width, activation="tanh", kernel_initializer=init) for _ in range(depth)]
        self.out = layers.Dense(1)

    def call(self, x):
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)


token_model = keras.Sequential([
    layers.Embedding(100, 16),
    layers.LSTM(16),
    layers.Dense(1),
])


def two_towers():
    """Two named inputs given as a dict: the batch must be packed in that structure."""
    numeric = keras.Input(shape=(12,), name="numeric")
    flags = keras.Input(shape=(6,), name="flags")
    x = layers.concatenate([numeric, flags])
    x = layers.Dense(16, activation="relu")(x)
    return keras.Model(inputs={"numeric": numeric, "flags": flags}, outputs=layers.Dense(1)(x))


def rescaled():
    """A preprocessing layer (Rescaling) asks Keras whether TensorFlow runs eagerly."""
    inputs = keras.Input(shape=(12,))
    x = layers.Dense(32, activation="relu", kernel_initializer="he_normal")(inputs)
    x = layers.Rescaling(0.5)(x)
    return keras.Model(inputs, layers.Dense(1)(x))
