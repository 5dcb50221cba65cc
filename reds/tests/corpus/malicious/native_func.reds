// expect: native-decl
public native func ShardSendChat(text: String) -> Int32
public func Helper() -> Void {}
