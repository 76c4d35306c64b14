// placeholder until the auth area lands
