
a1/orders1.0"order.created