// placeholder until the redis area lands
