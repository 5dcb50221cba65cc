// expect: hook-annotation
@addField(PlayerPuppet)
public let m_backdoor: Bool;
