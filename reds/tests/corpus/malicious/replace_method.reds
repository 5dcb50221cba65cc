// expect: hook-annotation
@replaceMethod(CraftingSystem)
public func GetItemCraftingCost(itemData: wref<gameItemData>) -> Int32 {
  return 0;
}
