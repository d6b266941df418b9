"""Whole CNNs at small widths, re-implemented from torchvision's and the models' public code
(which do not load here): ResNet-18, MobileNetV3-small, a UNet, a YOLO-style neck.

Each is a function of its input and its parameters. Its body asks `p` for each parameter by
shape: `Reader` hands out the function's arguments in order, `Drawer` draws new ones, so the
example inputs and the function cannot disagree on their order.
"""

import torch
import torch.nn.functional as F

from .registry import model, randn


class Reader:
    def __init__(self, params):
        self.params = iter(params)

    def conv(self, out_channels, in_channels, kernel):
        return next(self.params)

    def vector(self, size, around=0.0):
        return next(self.params)

    def linear(self, out_features, in_features):
        return next(self.params)


class Drawer:
    def __init__(self, g):
        self.g, self.drawn = g, []

    def _draw(self, tensor):
        self.drawn.append(tensor)
        return tensor

    def conv(self, out_channels, in_channels, kernel):
        return self._draw(randn(self.g, out_channels, in_channels, kernel, kernel,
                                scale=(in_channels * kernel * kernel) ** -0.5))

    def vector(self, size, around=0.0):
        return self._draw(around + randn(self.g, size, scale=0.1))

    def linear(self, out_features, in_features):
        return self._draw(randn(self.g, out_features, in_features, scale=in_features ** -0.5))


def inputs_of(body, *shapes):
    """The example inputs of `body(x..., p)`: random inputs of `shapes`, then the parameters
    the body asks for, drawn on the way."""

    def make(g):
        xs = tuple(randn(g, *shape) for shape in shapes)
        drawer = Drawer(g)
        body(*xs, drawer)
        return (*xs, *drawer.drawn)

    return make


def batch_norm(x, p, training):
    channels = x.shape[1]
    weight, bias = p.vector(channels, around=1.0), p.vector(channels)
    if training:
        return F.batch_norm(x, None, None, weight, bias, training=True)
    # running statistics, as a trained model has them: constants
    mean = torch.linspace(-0.2, 0.2, channels, dtype=x.dtype)
    var = torch.linspace(0.5, 1.5, channels, dtype=x.dtype)
    return F.batch_norm(x, mean, var, weight, bias, training=False)


def conv_bn(x, p, out_channels, kernel, training, stride=1, groups=1):
    w = p.conv(out_channels, x.shape[1] // groups, kernel)
    return batch_norm(F.conv2d(x, w, stride=stride, padding=(kernel - 1) // 2, groups=groups), p, training)


# torchvision resnet.py: resnet18 = ResNet(BasicBlock, [2, 2, 2, 2]), widths 64..512 here 4..32

def _basic_block(x, p, planes, stride, training):
    out = F.relu(conv_bn(x, p, planes, 3, training, stride))
    out = conv_bn(out, p, planes, 3, training)
    identity = x if stride == 1 and x.shape[1] == planes else conv_bn(x, p, planes, 1, training, stride)
    return F.relu(out + identity)


def _resnet18(x, p, training):
    x = F.relu(batch_norm(F.conv2d(x, p.conv(4, 3, 7), stride=2, padding=3), p, training))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    for i, planes in enumerate((4, 8, 16, 32)):
        x = _basic_block(x, p, planes, 1 if i == 0 else 2, training)
        x = _basic_block(x, p, planes, 1, training)
    x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
    return F.linear(x, p.linear(10, 32), p.vector(10))


@model("torchvision resnet.py: resnet18 (max-pool, adaptive average pool), batch norm in training")
def resnet18_train(x, *params):
    return _resnet18(x, Reader(params), training=True)


@model("torchvision resnet.py: resnet18 in eval (batch norm's running statistics)")
def resnet18_eval(x, *params):
    return _resnet18(x, Reader(params), training=False)


resnet18_train.inputs = inputs_of(lambda x, p: _resnet18(x, p, True), (2, 3, 32, 32))
resnet18_eval.inputs = inputs_of(lambda x, p: _resnet18(x, p, False), (2, 3, 32, 32))


# torchvision mobilenetv3.py: mobilenet_v3_small, width_mult 0.25, in eval

def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


# input channels, kernel, expanded channels, output channels, squeeze-excite, activation, stride
_SMALL = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2), (24, 3, 88, 24, False, "RE", 1),
          (24, 5, 96, 40, True, "HS", 2), (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
          (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1), (48, 5, 288, 96, True, "HS", 2),
          (96, 5, 576, 96, True, "HS", 1), (96, 5, 576, 96, True, "HS", 1)]
_WIDTH = 0.25


def _squeeze_excitation(x, p):
    channels = x.shape[1]
    squeeze = _make_divisible(channels // 4)
    scale = F.adaptive_avg_pool2d(x, 1)
    scale = F.relu(F.conv2d(scale, p.conv(squeeze, channels, 1), p.vector(squeeze)))
    scale = F.conv2d(scale, p.conv(channels, squeeze, 1), p.vector(channels))
    return F.hardsigmoid(scale) * x


def _inverted_residual(x, p, kernel, expanded, out_channels, use_se, activation, stride):
    act = F.hardswish if activation == "HS" else F.relu
    result = x
    if expanded != x.shape[1]:
        result = act(conv_bn(result, p, expanded, 1, False))
    result = act(conv_bn(result, p, expanded, kernel, False, stride, groups=expanded))
    if use_se:
        result = _squeeze_excitation(result, p)
    result = conv_bn(result, p, out_channels, 1, False)
    return result + x if stride == 1 and x.shape[1] == out_channels else result


def _mobilenet_v3_small(x, p):
    x = F.hardswish(conv_bn(x, p, _make_divisible(16 * _WIDTH), 3, False, stride=2))
    for _, kernel, expanded, out_channels, use_se, activation, stride in _SMALL:
        x = _inverted_residual(x, p, kernel, _make_divisible(expanded * _WIDTH),
                               _make_divisible(out_channels * _WIDTH), use_se, activation, stride)
    last = 6 * x.shape[1]
    x = F.hardswish(conv_bn(x, p, last, 1, False))
    x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    x = F.hardswish(F.linear(x, p.linear(256, last), p.vector(256)))
    x = F.dropout(x, 0.2, training=False)
    return F.linear(x, p.linear(10, 256), p.vector(10))


@model("torchvision mobilenetv3.py: mobilenet_v3_small (hardswish, hardsigmoid, squeeze-excite), in eval")
def mobilenet_v3_small(x, *params):
    return _mobilenet_v3_small(x, Reader(params))


mobilenet_v3_small.inputs = inputs_of(_mobilenet_v3_small, (2, 3, 32, 32))


# milesial/Pytorch-UNet unet_parts.py: DoubleConv, Down, Up (bilinear or transposed), OutConv

def _double_conv(x, p, out_channels, mid_channels=None):
    x = F.relu(conv_bn(x, p, mid_channels or out_channels, 3, True))
    return F.relu(conv_bn(x, p, out_channels, 3, True))


def _up(x1, x2, p, out_channels, bilinear):
    if bilinear:
        x1 = F.interpolate(x1, scale_factor=2, mode="bilinear", align_corners=True)
        in_channels = x1.shape[1] + x2.shape[1]
        mid = in_channels // 2
    else:
        channels = x1.shape[1]
        x1 = F.conv_transpose2d(x1, p.conv(channels, channels // 2, 2), p.vector(channels // 2), stride=2)
        mid = None
    diff_y, diff_x = x2.size()[2] - x1.size()[2], x2.size()[3] - x1.size()[3]
    x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
    return _double_conv(torch.cat([x2, x1], dim=1), p, out_channels, mid)


def _unet(x, p, bilinear):
    factor = 2 if bilinear else 1
    x1 = _double_conv(x, p, 4)
    x2 = _double_conv(F.max_pool2d(x1, 2), p, 8)
    x3 = _double_conv(F.max_pool2d(x2, 2), p, 16)
    x4 = _double_conv(F.max_pool2d(x3, 2), p, 32 // factor)
    x = _up(x4, x3, p, 16 // factor, bilinear)
    x = _up(x, x2, p, 8 // factor, bilinear)
    x = _up(x, x1, p, 4, bilinear)
    return F.conv2d(x, p.conv(2, 4, 1), p.vector(2))


@model("milesial Pytorch-UNet: UNet with bilinear upsampling (align_corners), pad and cat")
def unet_bilinear(x, *params):
    return _unet(x, Reader(params), bilinear=True)


@model("milesial Pytorch-UNet: UNet with transposed convolutions, pad and cat")
def unet_transposed(x, *params):
    return _unet(x, Reader(params), bilinear=False)


unet_bilinear.inputs = inputs_of(lambda x, p: _unet(x, p, True), (2, 3, 20, 18))
unet_transposed.inputs = inputs_of(lambda x, p: _unet(x, p, False), (2, 3, 20, 18))


# ultralytics YOLOv5 yolov5s.yaml head: Conv (conv, batch norm, SiLU), nearest upsampling, Concat

def _yolo_conv(x, p, out_channels, kernel=1, stride=1):
    return F.silu(conv_bn(x, p, out_channels, kernel, False, stride))


def _yolo_neck(p3, p4, p5, p):
    x = _yolo_conv(p5, p, 16)
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    x4 = _yolo_conv(torch.cat([up, p4], 1), p, 16, 3)
    x = _yolo_conv(x4, p, 8)
    out3 = _yolo_conv(torch.cat([F.interpolate(x, scale_factor=2.0), p3], 1), p, 8, 3)
    out4 = _yolo_conv(torch.cat([_yolo_conv(out3, p, 8, 3, 2), x], 1), p, 16, 3)
    return out3, out4


@model("ultralytics YOLOv5 head: FPN/PAN neck with nearest upsampling and concatenation")
def yolo_neck(p3, p4, p5, *params):
    return _yolo_neck(p3, p4, p5, Reader(params))


yolo_neck.inputs = inputs_of(_yolo_neck, (2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4))
