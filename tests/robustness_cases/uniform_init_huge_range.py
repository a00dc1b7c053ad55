# crash: GRD902 OverflowError "(34, 'Numerical result out of range')" in gradlint/gradflow.py init_sigma_w2
# (fan_in * (b - a) ** 2 / 12 for a uniform init whose range is 1e308 wide), reached from GRD006 via
# analysis.model_segments. Found by the Keras generator of tests/test_fuzz.py.
import keras
from keras import layers

model = keras.Sequential([
    layers.Dense(8, activation="tanh"),
    layers.Dense(8, activation="tanh", kernel_initializer=keras.initializers.RandomUniform(-1.0, 1e308)),
])
