// dialect: both
// Classes, structs, enums, qualifiers, parameter qualifiers, annotations.
public abstract class Base extends IScriptable {
  protected let m_id: Int32;
  private persistent let m_saved: Bool;
  public const let LIMIT: Int32;

  public func Id() -> Int32 {
    return this.m_id;
  }

  public native func Engine() -> Int32;
  public final func Fixed() -> Void {}
  protected cb func OnEvent(evt: ref<Event>) -> Bool {
    return true;
  }
  public static func Make() -> ref<Base> {
    return null;
  }
}

public importonly class Imported extends Base {}

public native class Engine extends IScriptable {
  public native func Call(opt x: Int32, out y: Int32, const z: array<array<Int32>>) -> Void
}

public struct Point {
  public let x: Float;
  public let y: Float;
}

public enum Level {
  Low = 0,
  Mid = 1,
  High = 2,
}

public exec func Console(game: GameInstance) -> Void {}
public quest func Quest() -> Bool {
  return false;
}

@wrapMethod(PlayerPuppet)
protected cb func OnGameAttached() -> Bool {
  return wrappedMethod();
}

@replaceMethod(PlayerPuppet)
public func IsPlayer() -> Bool {
  return true;
}

@addMethod(PlayerPuppet)
public func CorpusHelper() -> Int32 = 1

@addField(PlayerPuppet)
public let corpusFlag: Bool;

@replaceGlobal()
public func GetCorpus() -> Int32 = 2

@runtimeProperty("ModSettings.mod", "Corpus")
@if(ModuleExists("ModSettingsModule"))
public func Settings() -> Bool = true

public func Point2() -> Point {
  return new Point(1.0, 2.0);
}
