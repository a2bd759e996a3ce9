include $(sort $(wildcard $(BR2_EXTERNAL_LANAI_PATH)/package/*/*.mk))
