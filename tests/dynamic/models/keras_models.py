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
