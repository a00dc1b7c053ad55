import tensorflow as tf
from tensorflow.keras.layers import Dense, BatchNormalization, ReLU
from tensorflow.keras.models import Sequential
import numpy as np

X_train = np.random.rand(1000, 20)
y_train = np.random.randint(0, 2, size=(1000, 1))

model = Sequential()
model.add(Dense(64, input_shape=(20,)))
model.add(ReLU())
model.add(BatchNormalization())
for _ in range(10):
    model.add(Dense(64))
    model.add(ReLU())
    model.add(BatchNormalization())
model.add(Dense(1, activation='sigmoid'))

model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
history = model.fit(X_train, y_train, epochs=5, batch_size=32, validation_split=0.2)
