"""The seed notebook (PyTorch's autograd tutorial) as a script, run through remotegrad.

Every code cell is unchanged except its import: `import remotegrad as torch`. It uses the
default connection: $REMOTEGRAD_ADDR if set, else a cluster on localhost:50051 if one
answers, else the engine in this process.

    REMOTEGRAD_ADDR=localhost:50051 python examples/seed_tutorial.py
"""
# ruff: noqa: W291, E501  (the seed's cells are kept verbatim)

# In [54]:
import remotegrad as torch

# This creates a 3x3 tensor of ones with gradient tracking enabled.
x = torch.ones(3, 3, requires_grad=True)
print(x)

# In [55]:
# y is a new tensor resulting from multiplying x by 2. Since y is the result of an operation on x, it has a ``grad_fn``.
y = x * 2
print(y)
print(y.grad_fn)

# In [56]:
# z is the result of element-wise cubing y. out is the sum of z.
z = y ** 3
out = z.sum()
print(z, "\n\n", out)

# In [57]:
# The below code shows how to change the requires_grad attribute of an existing tensor in-place.
a = torch.randn(3, 3)
a = ((a + 4) / (a - 2))
print(a.requires_grad)
a.requires_grad_(True)
print(a.requires_grad)
b = (a * a).mean()
print(b.grad_fn)

# In [58]:
# This calculates the gradient of ``out`` w.r.t x.
out.backward()
print(x.grad)

# In [59]:
x = torch.randn(4, requires_grad=True)
y = x * 3
print(y)
while y.data.norm() < 500:
    y = y * 2
    print(y.data.norm())

print(y)

# In [60]:
# Create a tensor of size 4 with requires_grad=True
x = torch.randn(4, requires_grad=True)

# Perform element-wise multiplication and scaling until the norm of y is at least 100.
y = x * 3
print(y)

# Initialize iteration counter
iteration_count = 0

while y.data.norm() < 100:
    y = y * 2
    iteration_count += 1
    print(f"Iteration {iteration_count}: Norm = {y.data.norm()}")

# Vector-Jacobian Product: We define a vector v and compute the vector-Jacobian product by calling backward(v) on y.
v = torch.tensor([0.2, 0.5, 0.3, 0.4], dtype=torch.float)   # Vector to multiply with Jacobian
y.backward(v)       # Compute vector-Jacobian product
print(x.grad)

# In [61]:
# This block shows how to temporarily disable gradient tracking using torch.no_grad().
print(x.requires_grad)
print((x ** 2).requires_grad)

with torch.no_grad():
    print((x ** 2).requires_grad)

# In [62]:
# This code detaches y from the computation graph, meaning it no longer tracks operations. 
print(x.requires_grad)
y = x.detach()
print(y.requires_grad)
# This checks if all elements in x are equal to those in y. 
# It prints True because y is a detached view of x, so their values are identical.
print(x.eq(y).all())
