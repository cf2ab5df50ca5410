# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DAY 3 — Convolutional neural networks (畳み込みニューラルネットワーク)
#
# A fully connected layer treats a 28 × 28 digit as 784 unrelated numbers. A **convolution
# layer** (畳み込み層) slides one small filter over the whole image, so it
#
# - keeps the 2-D (and channel, チャンネル) structure of the input,
# - reuses the same few weights at every position (weight sharing), and
# - detects a pattern wherever it appears.
#
# A **pooling layer** (プーリング層) then shrinks the map, with no parameters of its own.
#
# Today you will:
# - build convolution from scratch, first as im2col + one matrix product, then as a module
#   that loads torch's weights;
# - build the blocks of modern CNNs: MobileNet's depthwise-separable convolution, ResNet's
#   shortcut and DenseNet's concatenation;
# - train a small VGG-style CNN on digits, look inside it, and transfer it to new digits
#   (転移学習 / ファインチューニング).
#
# Fill in every `# YOUR CODE HERE`. The check after each exercise compares your code with
# torch in float64, gradients included.

# %% tags=["locked:setup"]
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course import get_device, grading_mode, quick_mode, seed_everything
from course.checks import (check_conv2d, check_conv2d_module, check_conv_output_size, check_dense_block,
                           check_depthwise_separable, check_pooling, check_residual_block, check_simple_cnn,
                           check_transfer, count_mult_adds)
from course.data import load_mnist
from course.train import accuracy, train_classifier

device = get_device("auto")
QUICK = quick_mode()
print(f"device={device}, quick experiments={QUICK}")

# %% [markdown]
# ## 1. Output size: padding, stride, dilation (パディング・ストライド)
#
# A $K$-wide filter slid over an input of width $I$ fits at $I - K + 1$ positions.
# Three settings change that:
#
# - **padding** $P$ adds $P$ zeros on *each* side, so the edges are seen as often as the
#   middle and the map need not shrink;
# - **stride** $S$ moves the filter $S$ pixels at a time;
# - **dilation** $D$ spreads the filter's taps $D$ pixels apart, so it spans $D(K-1)+1$ pixels.
#
# $$O = \left\lfloor \frac{I + 2P - D(K-1) - 1}{S} \right\rfloor + 1$$
#
# The lecture's example: a 5 × 5 image with a 3 × 3 filter gives 3 × 3. With padding 1 the
# output stays 5 × 5, and with stride 2 as well it becomes 3 × 3.
# Pooling layers use the same formula.

# %%
# include: pair

# %% tags=["solution:conv_output_size"]
# include: conv_output_size

# %% tags=["test:test_conv_output_size:1"]
"""conv_output_size agrees with the sizes torch produces (1 point)."""
check_conv_output_size(conv_output_size)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_conv_output_size
hidden_conv_output_size(conv_output_size)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Convolution as im2col + one matrix product
#
# Each output value is a filter times one patch of the input, summed over the channels,
# plus a bias:
#
# $$y_{n,m,i,j} = b_m + \sum_{c}\sum_{u<K_h}\sum_{v<K_w} w_{m,c,u,v}\; x_{n,c,\,iS+u,\,jS+v}$$
#
# This is **cross-correlation**: the filter is *not* flipped, unlike convolution in signal
# processing. Learned filters make the distinction moot, but your result must match torch's.
#
# Loops over $i, j$ are slow in Python. **im2col** copies every patch into a column instead:
# `F.unfold(x, (K_h, K_w), stride=S)` returns `(N, C·K_h·K_w, L)` with $L = H_{out} W_{out}$.
# The whole layer is then a single matrix product:
# `weight.reshape(M, C·K_h·K_w) @ columns` → `(N, M, L)`.
#
# `F.unfold` has a `padding` argument, but pad yourself with `F.pad(x, (P_w, P_w, P_h, P_h))`
# so that you can see where the zeros go. Do not call `F.conv2d`: it is what the check
# compares with. Autograd differentiates `unfold` and `@`, so you get the backward pass for free.

# %% tags=["solution:conv2d"]
# include: conv2d

# %% tags=["test:test_conv2d:3"]
"""conv2d matches F.conv2d for several shapes, strides and paddings, in its gradients too (3 points)."""
check_conv2d(conv2d)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_conv2d
hidden_conv2d(conv2d)
### END HIDDEN TESTS

# %% [markdown]
# ### Your conv2d as an edge detector
#
# Hand-made filters: the Sobel filters respond to horizontal and vertical changes in
# brightness. Learned first-layer filters (section 8) often look similar.

# %%
Xtr, ytr = load_mnist("train")
Xte, yte = load_mnist("test")
sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
filters = torch.stack([sobel, sobel.T]).unsqueeze(1)  # (2, 1, 3, 3): vertical and horizontal edges
maps = conv2d(Xte[:1], filters, padding=1)
fig, axes = plt.subplots(1, 3, figsize=(8, 3))
for ax, img, title in zip(axes, [Xte[0, 0], maps[0, 0], maps[0, 1]], ["digit", "vertical edges", "horizontal edges"]):
    ax.imshow(img, cmap="gray" if title == "digit" else "bwr")
    ax.set_title(title)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 3. Pooling (プーリング)
#
# Max pooling keeps the largest value of each $K \times K$ window, average pooling the mean.
# Pooling has **no parameters**, keeps the **number of channels**, and makes the output
# **robust to small shifts** of the input. The stride defaults to the window size, so windows
# do not overlap.
#
# In the backward pass, max pooling sends each window's gradient to the one entry that was
# the maximum (the "switch"); the others did not change the output, so their gradient is 0.
# Taking the maximum with `torch.max`/`amax` gives you that routing through autograd.
# Tip: apply `F.unfold` to `x.reshape(N·C, 1, H, W)` so that channels are not mixed.

# %% tags=["solution:pooling"]
# include: max_pool2d, avg_pool2d

# %% tags=["test:test_pooling:2"]
"""max_pool2d and avg_pool2d match torch, including where the max pool sends gradients (2 points)."""
check_pooling(max_pool2d, avg_pool2d)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_pooling
hidden_pooling(max_pool2d, avg_pool2d)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. A Conv2d module
#
# Wrap `conv2d` in an `nn.Module` that is interchangeable with `nn.Conv2d`:
#
# - same parameter names and shapes, so that `state_dict`s load both ways:
#   `weight` is `(out_channels, in_channels, K_h, K_w)` (output channels first) and `bias` is
#   `(out_channels,)`, or `None` when `bias=False`;
# - torch's initialisation: weight and bias uniform in $\pm 1/\sqrt{\text{fan\_in}}$ with
#   $\text{fan\_in} = C K_h K_w$.

# %% tags=["solution:conv2d_module"]
# include: Conv2d

# %% tags=["test:test_conv2d_module:2"]
"""Conv2d loads nn.Conv2d's state_dict, gives the same output, and initialises like torch (2 points)."""
check_conv2d_module(Conv2d)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_conv2d_module
hidden_conv2d_module(Conv2d)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. MobileNet's depthwise-separable convolution
#
# A standard $K \times K$ convolution from $C$ to $M$ channels costs $K \cdot K \cdot C \cdot M$
# multiply-adds per output position. MobileNet splits it in two:
#
# - **depthwise** convolution (Depthwise Convolution): one $K \times K$ filter per input
#   channel, no mixing of channels: `nn.Conv2d(C, C, K, groups=C)`, costing $K \cdot K \cdot C$;
# - **pointwise** convolution (Pointwise Convolution): a 1 × 1 convolution that mixes
#   channels, costing $C \cdot M$.
#
# Together they cost $K^2 C + C M$ instead of $K^2 C M$, a saving of $1 / (1/M + 1/K^2)$:
# close to 9× for 3 × 3 filters. Build the block with `nn.Conv2d` layers named `depthwise` and
# `pointwise`, both without bias. Then write `conv_cost`, returning
# `(multiply_adds, parameters)` for an `out_h × out_w` output map.
# The check also counts the cost by running real layers; `count_mult_adds(model, x)` from
# `course.checks` is that counter, if you want to try it yourself.

# %% tags=["solution:depthwise_separable"]
# include: DepthwiseSeparableConv, conv_cost

# %% tags=["test:test_depthwise_separable:2"]
"""DepthwiseSeparableConv is depthwise + pointwise; conv_cost agrees with counting real layers (2 points)."""
check_depthwise_separable(DepthwiseSeparableConv, conv_cost)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_depthwise_separable
hidden_depthwise_separable(DepthwiseSeparableConv, conv_cost)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: what the saving looks like across widths

# %%
channels = [16, 32, 64, 128, 256, 512]
std_cost = [conv_cost(c, c, 3, 14, 14) for c in channels]
sep_cost = [conv_cost(c, c, 3, 14, 14, depthwise_separable=True) for c in channels]
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, i, what in ((axes[0], 1, "parameters"), (axes[1], 0, "multiply-adds, 14×14 output")):
    ax.loglog(channels, [c[i] for c in std_cost], "o-", label="standard 3×3")
    ax.loglog(channels, [c[i] for c in sep_cost], "s-", label="depthwise-separable")
    ax.set(xlabel="channels C = M", title=what)
    ax.legend()
plt.show()
for c, s, d in zip(channels, std_cost, sep_cost):
    print(f"C = M = {c:>3}: standard {s[0]:>11,} multiply-adds, separable {d[0]:>10,} ({s[0] / d[0]:.1f}× fewer)")

# %% [markdown]
# ## 6. ResNet's residual block (残差ブロック)
#
# Stacking more layers should never hurt: the extra layers could learn the identity. In
# practice plain deep networks train *worse* than shallow ones. ResNet makes the identity the
# default: each block learns only a correction $F(x)$ and adds its input back through a
# **shortcut** (スキップ接続):
#
# $$y = \mathrm{ReLU}(F(x) + x), \qquad F = \text{conv}_{3\times3} \to \text{BN} \to \text{ReLU}
#   \to \text{conv}_{3\times3} \to \text{BN}$$
#
# Because $\partial y / \partial x$ contains the identity, the gradient reaches early layers
# even when the branch's gradient is tiny. The check zeroes the branch to test exactly that.
# Use the names in the docstring (`self.branch`) so that the check can load weights into it.

# %% tags=["solution:residual_block"]
# include: ResidualBlock

# %% tags=["test:test_residual_block:2"]
"""ResidualBlock is ReLU(F(x) + x), and the gradient flows through the shortcut (2 points)."""
check_residual_block(ResidualBlock)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_residual_block
hidden_residual_block(ResidualBlock)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. DenseNet's dense block
#
# DenseNet takes the shortcut idea further: instead of *adding* a layer's input to its output,
# it *concatenates* them, so every layer sees the feature maps of **all** earlier layers in
# the block. Each layer adds only `growth_rate` ($k$) new channels, so layers stay thin.
#
# After $L$ layers the block outputs $C + L k$ channels: the input, then each layer's $k$.

# %% tags=["solution:dense_block"]
# include: DenseBlock

# %% tags=["test:test_dense_block:2"]
"""DenseBlock concatenates the input and every layer's output (2 points)."""
check_dense_block(DenseBlock)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_dense_block
hidden_dense_block(DenseBlock)
### END HIDDEN TESTS

# %% [markdown]
# ## 8. A CNN for digits
#
# A small network in the style of VGG: stacks of 3 × 3 convolutions, each followed by
# BatchNorm and ReLU, with max pooling halving the map (28 → 14 → 7), then a fully connected
# head. AlexNet (2012) showed that such networks win on images; VGG (2014) showed that depth
# built from 3 × 3 filters is enough; ResNet (2015) made very deep ones trainable.
#
# Use `nn.Conv2d` and friends here. Keep the attributes `features` (the convolutional part,
# starting with the first `nn.Conv2d`) and `head`, with an `nn.Linear` last: section 9 swaps it.
# `forward` returns raw logits. The check trains your network briefly and expects at least
# 93% test accuracy.

# %% tags=["solution:simple_cnn"]
# include: SimpleCNN

# %% tags=["test:test_simple_cnn:2"]
"""SimpleCNN has the right shapes and trains to ≥ 93% in 150 steps (2 points)."""
check_simple_cnn(SimpleCNN)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_simple_cnn
hidden_simple_cnn(SimpleCNN)
### END HIDDEN TESTS

# %% [markdown]
# ### Training it
#
# `train_classifier` (in `course/train.py`) runs Adam with a one-cycle learning-rate schedule
# and shifts each digit by up to 2 pixels at random (data augmentation). On the bundled
# 4,000 training digits, 8 epochs reach about 97–98% test accuracy on a laptop CPU in under a
# minute. When the notebook is graded, or in quick mode, it trains for 3 epochs (about 96%).
# `course run day3_cnn --device cuda` trains on full MNIST, when it is in `data/`, and should
# reach 99.2% or more.

# %%
epochs = 1 if grading_mode() else 3 if QUICK else 8  # autograding only needs the cells to run
gen = seed_everything(0)
cnn = SimpleCNN()
losses = train_classifier(cnn, Xtr, ytr, epochs=epochs, device=device, generator=gen, desc="SimpleCNN")
print(f"SimpleCNN: {sum(p.numel() for p in cnn.parameters()):,} parameters, "
      f"test accuracy {accuracy(cnn, Xte, yte, device=device):.4f} after {epochs} epochs")
plt.figure(figsize=(6, 3))
plt.semilogy(losses, alpha=0.7)
plt.xlabel("step"); plt.ylabel("training loss"); plt.title("SimpleCNN")
plt.show()

# %% [markdown]
# ### Experiment: what the first layer learned
#
# Top row: the first layer's 3 × 3 filters (red positive, blue negative). Middle row: the
# feature maps they produce for one test digit, after BatchNorm and ReLU. Many filters act as
# edge or stroke detectors at one orientation, like the Sobel filters above.

# %%
conv1 = cnn.features[0]
w = conv1.weight.detach().cpu()[:, 0]
with torch.no_grad():
    fmap = cnn.features[:3](Xte[:1].to(device))[0].cpu()  # conv → BN → ReLU
n = min(16, w.shape[0])
fig, axes = plt.subplots(2, n + 1, figsize=(n + 1, 2.3))
axes[0, 0].imshow(Xte[0, 0], cmap="gray"); axes[0, 0].set_title("input", fontsize=8)
for i in range(n):
    axes[0, i + 1].imshow(w[i], cmap="bwr", vmin=-w.abs().max(), vmax=w.abs().max())
    axes[1, i + 1].imshow(fmap[i], cmap="gray")
for ax in axes.flat:
    ax.axis("off")
plt.suptitle("first-layer filters (top) and their feature maps for one digit (bottom)")
plt.show()

# %% [markdown]
# ## 9. Transfer learning and fine-tuning (転移学習とファインチューニング)
#
# A network trained on one task has learned features that help on a related one:
#
# - **transfer learning** (転移学習) freezes the pretrained weights and uses the network as a
#   fixed feature extractor; only a new output layer is trained;
# - **fine-tuning** (ファインチューニング) starts from the pretrained weights and keeps
#   training some or all of them, usually with a small learning rate.
#
# Write `freeze(module)`, which stops every parameter (nested ones too) from training, and
# `replace_head(model, num_classes)`, which swaps the *last* `nn.Linear`, wherever it is
# nested, for a fresh trainable one. In practice the pretrained network would be a
# torchvision model with ImageNet weights (`resnet18(weights="DEFAULT")`, whose head is
# `model.fc`). Downloading weights is not possible offline, so here we pretrain ourselves.

# %% tags=["solution:transfer"]
# include: freeze, replace_head

# %% tags=["test:test_transfer:2"]
"""freeze stops every parameter; replace_head swaps the last Linear for a trainable one (2 points)."""
check_transfer(freeze, replace_head)
### BEGIN HIDDEN TESTS
from solutions.day3_cnn.hidden import hidden_transfer
hidden_transfer(freeze, replace_head)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: from digits 0–4 to digits 5–9 with few labels
#
# Pretrain SimpleCNN on the digits 0–4 only. Then learn 5–9 from a handful of labelled
# examples per class in three ways: frozen pretrained backbone, fine-tuned pretrained network,
# and the same network from scratch. Every method gets the same number of optimizer steps.
#
# Pretraining on five digit classes is a much weaker start than ImageNet. Expect fine-tuning
# to help most when labels are scarce, and training from scratch to catch up as labels grow.

# %%
# include: split_digits, few_labels, transfer_experiment

# %%
Xa, ya = split_digits(Xtr, ytr, range(5))
Xb, yb = split_digits(Xtr, ytr, range(5, 10))
Xb_te, yb_te = split_digits(Xte, yte, range(5, 10))
gen = seed_everything(0)
pretrained = SimpleCNN(num_classes=5)
train_classifier(pretrained, Xa, ya, epochs=1 if grading_mode() else 2 if QUICK else 8, device=device, generator=gen,
                 desc="pretrain 0-4")
state = {k: v.cpu() for k, v in pretrained.state_dict().items()}
labels = (5,) if grading_mode() else (5, 50) if QUICK else (1, 5, 10, 50)
table = {m: [] for m in ("frozen", "fine-tune", "scratch")}
for k in labels:
    res = transfer_experiment(state, Xb, yb, Xb_te, yb_te, k, steps=20 if grading_mode() else 60 if QUICK else 200, seed=0, device=device)
    for m in table:
        table[m].append(res[m])
    print(f"{k:>3} labels per class: " + ", ".join(f"{m} {res[m]:.3f}" for m in table))
plt.figure(figsize=(6, 4))
for m, accs in table.items():
    plt.semilogx(labels, accs, "o-", label=m)
plt.xlabel("labelled digits per class (5–9)"); plt.ylabel("test accuracy on 5–9"); plt.ylim(0, 1)
plt.title("Transfer from digits 0–4 to 5–9"); plt.legend()
plt.show()

# %% [markdown]
# ## Summary (まとめ)
#
# - Output size: $\lfloor (I + 2P - D(K-1) - 1)/S \rfloor + 1$. Padding keeps the edges;
#   stride and pooling shrink the map.
# - A convolution layer is im2col followed by one matrix product, and it computes
#   cross-correlation: the kernel is not flipped. Pooling has no parameters, and max pooling
#   routes each gradient to the window's maximum.
# - Depthwise + pointwise costs $K^2C + CM$ instead of $K^2CM$ (MobileNet).
# - ResNet adds the input back ($y = \mathrm{ReLU}(F(x) + x)$); DenseNet concatenates it.
# - Pretrained features help most when labels are few: freeze them, or fine-tune them.
