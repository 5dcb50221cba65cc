// expect: forbidden-annotation
@runtimeProperty("ModSettings.mod", "Evil")
public class Settings extends IScriptable {}
