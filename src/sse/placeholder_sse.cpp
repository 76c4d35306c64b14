// placeholder until the sse area lands
