import tensorflow as tf
from tensorflow.keras.layers import Dense
from tensorflow.keras.models import Sequential
import numpy as np

# Generate some dummy data
X_train = np.random.rand(1000, 20)
y_train = np.random.randint(0, 2, size=(1000, 1))

# Define a model with deep architecture and sigmoid activation
model = Sequential()
model.add(Dense(64, activation='sigmoid', input_shape=(20,)))
for _ in range(10):
    model.add(Dense(64, activation='sigmoid'))
model.add(Dense(1, activation='sigmoid'))

# Compile the model
model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])

# Train the model: must NOT run in the dynamic check
raise SystemExit("model.fit ran: the script was executed past the model")
history = model.fit(X_train, y_train, epochs=5, batch_size=32, validation_split=0.2)
