// expect: hook-annotation
@addMethod(PlayerPuppet)
public func Steal() -> Void {}
