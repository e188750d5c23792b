"""The ESB's bkcore tables esbgen meets: systems, their doc categories and channels."""

from django.db import models


class ComponentSystemManager(models.Manager):
    """Like the ESB's: the default manager carries helpers of its own."""

    def by_name(self, name):
        return self.filter(name=name).first()


class SystemDocCategory(models.Model):
    name = models.CharField(max_length=32, db_index=True)
    priority = models.IntegerField(default=1000)

    class Meta:
        db_table = "esb_system_doc_category"


class ComponentSystem(models.Model):
    name = models.CharField(max_length=64)
    label = models.CharField(max_length=128)
    component_admin = models.CharField(max_length=128, default="", blank=True)
    interface_admin = models.CharField(max_length=128, default="", blank=True)
    system_link = models.CharField(max_length=1024, default="", blank=True)
    belong_to = models.CharField(max_length=128, default="", blank=True)
    remark = models.TextField(default="", blank=True)
    execute_timeout = models.IntegerField(null=True, blank=True)
    query_timeout = models.IntegerField(null=True, blank=True)
    doc_category_id = models.IntegerField(null=True, blank=True)

    objects = ComponentSystemManager()

    class Meta:
        ordering = ["name"]
        db_table = "esb_component_system"


class ESBChannel(models.Model):
    name = models.CharField(max_length=64)
    path = models.CharField(max_length=255)
    method = models.CharField(max_length=32, default="", blank=True)
    component_system = models.ForeignKey(ComponentSystem, null=True, on_delete=models.CASCADE)
    component_codename = models.CharField(max_length=255)

    class Meta:
        db_table = "esb_channel"
