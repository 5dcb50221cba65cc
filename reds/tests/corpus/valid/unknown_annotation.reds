// dialect: 1.0
// 1.0 parses any annotation name; 0.5.x knows a fixed set.
@intrinsic(1)
public func Tagged() -> Void {}
