# A raw-tensor training script: no nn.Module, weights made by hand, the forward inside the loop.
# The dynamic check runs it up to its first backward (the loop runs once) and measures y_pred.
import torch

N, D_in, H, D_out = 128, 64, 64, 1
x = torch.randn(N, D_in)
y = torch.randn(N, D_out)
w_in = torch.empty(D_in, H)
torch.nn.init.xavier_normal_(w_in)  # under no_grad: not a use of the weight in the forward
w_in.requires_grad_()
hidden = [(torch.randn(H, H) * 0.01).requires_grad_() for _ in range(10)]
w_out = torch.randn(H, D_out, requires_grad=True)
steps = 0

for _step in range(1000):
    steps += 1
    h = torch.tanh(x.mm(w_in))
    for w in hidden:
        h = torch.tanh(h @ w)
    y_pred = h.mm(w_out)
    loss = (y_pred - y).pow(2).mean()
    try:
        loss.backward()
    except Exception:  # the script's own handler must not swallow the stop
        pass
    with torch.no_grad():
        for w in [w_in, *hidden, w_out]:
            w -= 1e-3 * w.grad
            w.grad.zero_()
