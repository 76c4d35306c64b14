// placeholder until the config area lands
